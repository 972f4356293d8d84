"""Docstring parts written once and filled into the docstrings that share
them (numpydoc parameter lists of sibling functions and classes)."""

import re
import textwrap


def filled(parts):
    """A decorator that replaces each docstring line ``%(name)s`` with
    ``parts[name]``, indented as that line: in a function's docstring, or
    in a class's and those of the methods it defines.

    Examples
    --------
    >>> @filled({"x": "x : float\\n    The point."})
    ... def f(x):
    ...     '''Parameters
    ...     ----------
    ...     %(x)s
    ...     '''
    >>> print(f.__doc__.strip())
    Parameters
        ----------
        x : float
            The point.
    """
    def fill(doc):
        return re.sub(r"^( *)%\((.+)\)s$",
                      lambda m: textwrap.indent(parts[m[2]], m[1]), doc,
                      flags=re.M)

    def decorate(obj):
        obj.__doc__ = fill(obj.__doc__)
        if isinstance(obj, type):
            for method in vars(obj).values():
                if callable(method) and method.__doc__:
                    method.__doc__ = fill(method.__doc__)
        return obj
    return decorate

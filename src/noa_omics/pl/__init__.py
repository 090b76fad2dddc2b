"""Plotting (``noa.pl``): matplotlib figures that return their axes, like scanpy.

Each concern keeps its plots in one private module; this namespace only re-exports them.
"""

from ._scores import *  # noqa: F401,F403
from ._celltypes import *  # noqa: F401,F403
from ._spatial import *  # noqa: F401,F403
from ._multihit import *  # noqa: F401,F403

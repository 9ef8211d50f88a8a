"""The cc concurrency toolkit: every public name of the four cc packages.

Importing from ``cc.concurrency`` is the same as importing from the package
that defines the name (``cc.primitives``, ``cc.core_helpers``, ``cc.queues``,
or ``cc.locks``; and ``cc.redis`` when it is installed, with
``pip install "cc-concurrency[redis]"``); the objects are identical.
``python -m cc.concurrency`` prints the installed versions and checks that
they fit together.
"""

from typing import TYPE_CHECKING

from cc.concurrency.__about__ import __version__ as __version__

if TYPE_CHECKING:  # what type checkers and IDEs see: the names reexport() binds
    from cc.core_helpers import *  # noqa: F403
    from cc.locks import *  # noqa: F403
    from cc.primitives import *  # noqa: F403
    from cc.queues import *  # noqa: F403
    from cc.redis import *  # noqa: F403
else:
    from cc.concurrency import _reexport

    __all__, __getattr__ = _reexport.reexport(__name__, globals())

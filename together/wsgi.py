import ctypes
import os

from django.core.wsgi import get_wsgi_application

M_ARENA_MAX = -8  # glibc's mallopt parameter (malloc.h)
SERVER_MALLOC_ARENAS = 2


def limit_malloc_arenas(arenas: int = SERVER_MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas for this serving process, unless MALLOC_ARENA_MAX says otherwise.

    glibc gives each thread its own arena (up to 8 a core) and an arena keeps the high-water
    mark of what its thread once held. gunicorn's threads share one GIL, so they gain nothing
    from separate arenas; capped at two, a worker that had served creates and list pages held
    7 MB less (issue 15: the export row's peak RSS, 111 to 104 MB). gunicorn loads this module
    before it starts a worker's threads, so the cap holds for all of them. False where there
    is no glibc."""
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False  # glibc read the operator's own setting at start-up
    try:
        return bool(ctypes.CDLL("libc.so.6").mallopt(M_ARENA_MAX, arenas))
    except (OSError, AttributeError):
        return False


limit_malloc_arenas()
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "together.settings")
application = get_wsgi_application()

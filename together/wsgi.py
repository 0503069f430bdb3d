import ctypes
import gc
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


def freeze_loaded_objects() -> int:
    """Load the URL conf (and with it every view, serializer and service module) now
    rather than on the first request, then put every object loaded so far out of
    the cyclic garbage collector's walks (gc.freeze); returns how many.

    Those objects (modules, classes, functions, settings: about 140,000) live as long
    as the process, yet each full collection walked them all: measured in a process
    that had loaded the site, one full collection every ~300 gift creates, of about
    80 ms, which the request that set it off waited (0.27 ms a create on average;
    issue 15). The collector still finds cycles among the objects made afterwards.
    A collection first, so no garbage of the start-up is frozen."""
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - imports the URL conf, whose include()s import each app's views
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


limit_malloc_arenas()
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "together.settings")
application = get_wsgi_application()
freeze_loaded_objects()

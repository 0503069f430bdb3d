"""Public developer pages: the errors guide."""
from django.http import Http404
from django.shortcuts import render

from together.exceptions import ERROR_CODES


def _codes():
    return [
        {"code": code, "status": status, "title": title, "help": help_text}
        for code, (status, title, help_text) in ERROR_CODES.items()
    ]


def errors_index(request):
    return render(request, "developer/errors.html", {"codes": _codes()})


def error_detail(request, code: str):
    if code not in ERROR_CODES:
        raise Http404("No such error code")
    status, title, help_text = ERROR_CODES[code]
    return render(request, "developer/error_detail.html", {"code": code, "status": status, "title": title, "help": help_text})

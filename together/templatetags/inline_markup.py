"""`{{ text|inline_markup }}`: help text written with a few inline marks, shown as
HTML. Only these, nothing else: `code`, **strong**, *emphasis*, and
[a link](https://… or /a/path). Everything is escaped first, so text can never
inject markup; a link to any other scheme (javascript:, data:) stays text."""
from __future__ import annotations

import re

from django import template
from django.utils.html import escape
from django.utils.safestring import mark_safe

register = template.Library()

CODE = re.compile(r"`([^`\n]+)`")
STRONG = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")
EMPHASIS = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
LINK = re.compile(r"\[([^\]\n]+)\]\(((?:https?://|/)[^\s()]*)\)")


def render_inline(text) -> str:
    if text is None:
        return ""
    html = escape(str(text).replace("\x00", ""))
    codes: list[str] = []

    def keep_code(match) -> str:  # code spans are literal: no marks inside them
        codes.append(f"<code>{match.group(1)}</code>")
        return f"\x00{len(codes) - 1}\x00"

    html = CODE.sub(keep_code, html)
    html = LINK.sub(lambda m: f'<a href="{m.group(2)}">{m.group(1)}</a>', html)
    html = STRONG.sub(r"<strong>\1</strong>", html)
    html = EMPHASIS.sub(r"<em>\1</em>", html)
    html = re.sub("\x00(\\d+)\x00", lambda m: codes[int(m.group(1))], html)
    return html


@register.filter
def inline_markup(text) -> str:
    return mark_safe(render_inline(text))

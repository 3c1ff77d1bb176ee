"""API paths are canonical without a trailing slash (API.md); the slashed spelling also answers."""

from __future__ import annotations

from django.urls import path


def api_path(route: str, view, name: str):
    return [path(route, view, name=name), path(route + "/", view, name=f"{name}-slash")]


def drop_slashed_duplicates(endpoints, **kwargs):
    """drf-spectacular preprocessing hook: document each endpoint once, without the slash."""
    paths = {p for p, *_ in endpoints}
    return [e for e in endpoints if not (e[0].endswith("/") and e[0].rstrip("/") in paths)]

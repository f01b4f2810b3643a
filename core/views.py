"""What every HTML view shares: who may open it, its form's binding and status, and how a refused one-click
step is shown."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.template.loader import get_template
from django.utils.cache import add_never_cache_headers
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_http_methods

from core.errors import Conflict, error_text

View = Callable[..., HttpResponse]
F = TypeVar("F", bound=forms.BaseForm)


def html_view(*methods: str, perm: str | None = None, post_perm: str | None = None) -> Callable[[View], View]:
    """An HTML view: signed in (else the login page), only these HTTP methods (else 405), and with the model
    permission `perm` where one is named (else 403), checked in that order; a POST also needs `post_perm`
    (a page many may read whose form only some may submit). Every endpoint is authenticated
    (docs/architecture.md §7).

    Its answers are never stored by the browser (`Cache-Control: no-store`): the back button after a step (released,
    administered, verified) reloads the page's current state instead of showing a stale one. A view that sets its
    own Cache-Control (the polled inbox and badge: ETag and 304) keeps it."""

    def decorate(view: View) -> View:
        @wraps(view)
        def posting(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method == "POST" and not request.user.has_perm(post_perm or ""):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        checked = posting if post_perm else view
        checked = permission_required(perm, raise_exception=True)(checked) if perm else checked
        return _not_stored(login_required(require_http_methods(list(methods))(checked)))

    return decorate


def _not_stored(view: View) -> View:
    @wraps(view)
    def answered(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = view(request, *args, **kwargs)
        if not response.has_header("Cache-Control"):
            add_never_cache_headers(response)
        return response

    return answered


def posted_form(request: HttpRequest, form_class: type[F], **kwargs: Any) -> tuple[F, int]:
    """A page's form, bound to the request's POST (else unbound), and the status to render it with: 400 for a
    posted form until its step succeeds (a redirect) or is refused (`core.errors.form_refused`), else 200."""
    form = form_class(request.POST if request.method == "POST" else None, **kwargs)
    return form, 400 if form.is_bound else 200


@dataclass
class Step:
    refused: bool = False


@contextmanager
def step_messages(request: HttpRequest, *also: type[Exception]) -> Iterator[Step]:
    """A one-click step (a POST answered by a redirect): a refusal (`Conflict`, `ValidationError` and the
    exceptions in `also`) becomes an error message on the next page; `refused` tells the view where to go."""
    step = Step()
    refusals: tuple[type[Exception], ...] = (Conflict, ValidationError, *also)
    try:
        yield step
    except refusals as error:
        messages.error(request, error_text(error))
        step.refused = True


def render_rows(template_name: str, request: HttpRequest, **context: Any) -> SafeString:
    """A list page's rows from a Jinja2 template (labflow/jinja2.py; docs/architecture.md §6), to place in the
    page's Django template. One CSRF field serves every form of the rows (rendering with the request would give
    the backend's lazy ``csrf_input``, which masks a new token for each form)."""
    context["csrf_input"] = format_html(
        '<input type="hidden" name="csrfmiddlewaretoken" value="{}">', get_token(request)
    )
    html = get_template(template_name, using="jinja2").render(context)
    return mark_safe(html)  # noqa: S308 -- Jinja2 autoescapes every value (labflow/jinja2.py)

"""Request checks every view relies on."""

from __future__ import annotations

from django.http import HttpResponseBadRequest


class RejectNulCharactersMiddleware:
    """Answer 400 to a request whose path, query or form fields contain a NUL character.

    PostgreSQL cannot store or compare NUL in text (psycopg raises DataError),
    so no view may ever pass one to a query; refusing it here covers every view,
    form and admin page at once.
    """

    MESSAGE = "Request parameters may not contain NUL characters (\\x00)."

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "\x00" in request.path or self._has_nul(request.GET) or self._has_nul(request.COOKIES):
            return HttpResponseBadRequest(self.MESSAGE, content_type="text/plain")
        if request.method == "POST" and request.content_type in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ):
            if self._has_nul(request.POST):
                return HttpResponseBadRequest(self.MESSAGE, content_type="text/plain")
        return self.get_response(request)

    @staticmethod
    def _has_nul(data) -> bool:
        if hasattr(data, "lists"):
            return any("\x00" in key or any("\x00" in value for value in values) for key, values in data.lists())
        return any("\x00" in key or "\x00" in value for key, value in data.items())

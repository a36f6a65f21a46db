"""The error page: generic, with the request id to quote, never a stack trace."""

from django.http import HttpResponseServerError
from django.template import loader
from django.views.decorators.csrf import requires_csrf_token


@requires_csrf_token
def server_error(request, template_name="500.html"):
    body = loader.render_to_string(template_name, {"request_id": getattr(request, "request_id", "")})
    return HttpResponseServerError(body)

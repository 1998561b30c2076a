from django.http import HttpRequest, HttpResponse


def home(request: HttpRequest) -> HttpResponse:
    return HttpResponse("kameng")


def login_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse("login")

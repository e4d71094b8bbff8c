from django.shortcuts import render
from django.utils import timezone

from campaigns import wallboard
from tenancy.access import role_required
from tenancy.models import Role


@role_required(Role.VIEWER)
def wallboard_page(request):
    return render(request, "campaigns/wallboard.html", wallboard.board(request.workspace, now=timezone.now()))


@role_required(Role.VIEWER)
def wallboard_board(request):
    """The board alone, fetched again and again by the page's script."""
    return render(request, "campaigns/_board.html", wallboard.board(request.workspace, now=timezone.now()))

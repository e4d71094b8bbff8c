from django.http import FileResponse, Http404

from streams.models import StreamSession
from tenancy.access import role_required, scoped
from tenancy.models import Role

TRACKS = {"caller": "caller_recording", "bot": "bot_recording"}


def recording_response(session: StreamSession, track: str) -> FileResponse:
    """A stream's recording (track "caller" or "bot") as a WAV response; 404 if it has none."""
    field = getattr(session, TRACKS[track], None) if track in TRACKS else None
    if not field:
        raise Http404("No such recording.")
    return FileResponse(field.open("rb"), content_type="audio/wav", filename=f"{session}-{track}.wav")


@role_required(Role.VIEWER)
def recording(request, pk: int, track: str):
    try:
        session = scoped(request, StreamSession).get(pk=pk)
    except StreamSession.DoesNotExist:
        raise Http404("No such stream.") from None
    return recording_response(session, track)

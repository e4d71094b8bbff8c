import re

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from campaigns import uploads
from streams import prompts, tts
from streams.forms import PromptUploadForm, TextPromptForm, VoiceForm
from streams.models import Prompt, StreamSession, Voice
from tenancy.access import role_required, scoped
from tenancy.models import Role

TRACKS = {"caller": "caller_recording", "bot": "bot_recording"}


def recording_response(session: StreamSession, track: str) -> FileResponse:
    """A stream's recording (track "caller" or "bot") as a WAV response; 404 if it has none."""
    field = getattr(session, TRACKS[track], None) if track in TRACKS else None
    if not field:
        raise Http404("No such recording.")
    return FileResponse(field.open("rb"), content_type="audio/wav", filename=f"{session}-{track}.wav")


BYTE_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


class FilePart:
    """`length` bytes of an open file from where it stands: what FileResponse streams for a byte range."""

    def __init__(self, file, length: int) -> None:
        self.file, self.left = file, length

    def read(self, size: int = -1) -> bytes:
        data = self.file.read(self.left if size < 0 else min(size, self.left))
        self.left -= len(data)
        return data

    def close(self) -> None:
        self.file.close()


def prompt_response(request, prompt: Prompt) -> HttpResponse:
    """A prompt's audio as stored (converted on upload: mono 16-bit PCM WAV), for an <audio> element, in the
    byte ranges players ask for (without them Chromium fetches the file again and again, and cannot seek)."""
    size = prompt.audio.size
    match = BYTE_RANGE.fullmatch(request.headers.get("Range", "").strip())
    if not match or match.groups() == ("", ""):
        response = FileResponse(prompt.audio.open("rb"), content_type="audio/wav", filename=f"{prompt.name}.wav")
        response["Accept-Ranges"] = "bytes"
        return response
    first, last = match.groups()
    start, end = (int(first), min(int(last or size - 1), size - 1)) if first else (max(size - int(last), 0), size - 1)
    if start > end:
        return HttpResponse(status=416, headers={"Content-Range": f"bytes */{size}"})
    audio = prompt.audio.open("rb")
    audio.seek(start)
    response = FileResponse(FilePart(audio, end - start + 1), status=206, content_type="audio/wav")
    response["Content-Range"], response["Content-Length"] = f"bytes {start}-{end}/{size}", str(end - start + 1)
    response["Accept-Ranges"] = "bytes"
    return response


@role_required(Role.VIEWER)
def recording(request, pk: int, track: str):
    try:
        session = scoped(request, StreamSession).get(pk=pk)
    except StreamSession.DoesNotExist:
        raise Http404("No such stream.") from None
    return recording_response(session, track)


def _prompts_page(request, *, form=None, text_form=None, voice_form=None):
    """The page with its three forms, the one that was sent bound (with its errors)."""
    uses = prompts.uses(request.workspace)
    rows = [(prompt, uses.get(prompt.name, [])) for prompt in scoped(request, Prompt).select_related("voice")]
    return render(request, "streams/prompts.html", {
        "rows": rows, "voices": scoped(request, Voice),
        "form": form or PromptUploadForm(),
        "text_form": text_form or TextPromptForm(workspace=request.workspace),
        "voice_form": voice_form or VoiceForm(workspace=request.workspace),
    })


@role_required(Role.VIEWER)
def prompt_list(request):
    return _prompts_page(request)


@require_POST
@role_required(Role.OPERATOR)
def prompt_upload(request):
    form = PromptUploadForm(request.POST, request.FILES, refused=uploads.refusal(request))
    if form.is_valid():
        try:
            prompt = prompts.save_prompt(request.workspace, form.cleaned_data["name"], form.cleaned_data["file"])
        except ValidationError as exc:
            form.add_error("file", exc)
        else:
            messages.success(request, f"Prompt {prompt.name} saved ({prompt.duration_ms / 1000:.1f} s).")
            return redirect("streams:prompts")
    return _prompts_page(request, form=form)


@require_POST
@role_required(Role.OPERATOR)
def prompt_speak(request):
    """A prompt made from text by one of the workspace's voices (streams/tts.py)."""
    form = TextPromptForm(request.POST, workspace=request.workspace)
    if form.is_valid():
        data = form.cleaned_data
        try:
            prompt = tts.save_text_prompt(request.workspace, data["name"], data["voice"], data["text"])
        except tts.SynthesisFailed as exc:
            form.add_error("text", str(exc))
        else:
            messages.success(request, f"Prompt {prompt.name} saved ({prompt.duration_ms / 1000:.1f} s) from "
                                      f"{prompt.voice.name}.")
            return redirect("streams:prompts")
    return _prompts_page(request, text_form=form)


@require_POST
@role_required(Role.ADMIN)
def voice_add(request):
    form = VoiceForm(request.POST, workspace=request.workspace)
    if form.is_valid():
        voice = form.save()
        messages.success(request, f"Voice {voice.name} added.")
        return redirect("streams:prompts")
    return _prompts_page(request, voice_form=form)


@require_POST
@role_required(Role.ADMIN)
def voice_delete(request, pk: int):
    voice = get_object_or_404(scoped(request, Voice), pk=pk)
    voice.delete()
    messages.success(request, f"Voice {voice.name} removed; the prompts it made keep their audio.")
    return redirect("streams:prompts")


@role_required(Role.VIEWER)
def prompt_audio(request, pk: int):
    return prompt_response(request, get_object_or_404(scoped(request, Prompt), pk=pk))


@require_POST
@role_required(Role.OPERATOR)
def prompt_delete(request, pk: int):
    prompt = get_object_or_404(scoped(request, Prompt), pk=pk)
    try:
        prompts.delete_prompt(prompt)
    except prompts.InUse as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Prompt {prompt.name} deleted.")
    return redirect("streams:prompts")

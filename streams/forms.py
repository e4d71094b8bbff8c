from django import forms

from campaigns import uploads
from integrations.delivery import check_url
from streams import tts
from streams.bots.relay import check_token
from streams.models import Prompt, Voice
from tenancy import weburls


class PromptUploadForm(uploads.BoundedFileForm):
    name = forms.SlugField(max_length=50, help_text=Prompt._meta.get_field("name").help_text
                           + " A prompt of the same name is replaced.")
    file = forms.FileField(label="Audio file", help_text="WAV or MP3, at most 20 MB and 10 minutes; stereo is mixed "
                           "down, and every call hears it at its own sample rate.",
                           widget=forms.ClearableFileInput(attrs={"accept": ".wav,.mp3,audio/wav,audio/mpeg"}))


class TextPromptForm(forms.Form):
    name = forms.SlugField(max_length=50, help_text=Prompt._meta.get_field("name").help_text
                           + " A prompt of the same name is replaced.")
    voice = forms.ModelChoiceField(queryset=Voice.objects.none(), empty_label=None)
    text = forms.CharField(max_length=tts.TEXT_MAX, widget=forms.Textarea(attrs={"rows": 3}),
                           help_text="Said once, now, by the voice; the prompt keeps the audio.")

    def __init__(self, *args, workspace, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["voice"].queryset = Voice.objects.filter(workspace=workspace)


class VoiceForm(forms.ModelForm):
    """The token is write-only, as every secret: never rendered back."""

    url = forms.URLField(max_length=500, label="URL", assume_scheme="https",
                         help_text=Voice._meta.get_field("url").help_text)
    token = forms.CharField(required=False, widget=forms.PasswordInput(render_value=False),
                            help_text=Voice._meta.get_field("token").help_text + " Optional.")

    class Meta:
        model = Voice
        fields = ["name", "url", "voice_id", "token"]

    def __init__(self, *args, workspace, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance.workspace = workspace

    def clean_url(self):
        url = self.cleaned_data["url"]
        try:  # what can be told without DNS; the address it resolves to is checked when the voice is asked
            check_url(url, resolve=False)
        except weburls.Refused as exc:
            raise forms.ValidationError(str(exc)) from None
        return url

    def clean_token(self):
        token = self.cleaned_data["token"]
        check_token(token)
        return token

    def validate_unique(self):
        # workspace is not a form field, so ModelForm would skip the (workspace, name) check.
        try:
            self.instance.validate_constraints()
        except forms.ValidationError as exc:
            self._update_errors(exc)

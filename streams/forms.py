from django import forms

from streams.models import Prompt


class PromptUploadForm(forms.Form):
    # The name first: a file stopped on its way in (too large) loses the fields sent after it.
    name = forms.SlugField(max_length=50, help_text=Prompt._meta.get_field("name").help_text
                           + " A prompt of the same name is replaced.")
    file = forms.FileField(label="Audio file", help_text="WAV or MP3, at most 20 MB and 10 minutes; stereo is mixed "
                           "down, and every call hears it at its own sample rate.",
                           widget=forms.ClearableFileInput(attrs={"accept": ".wav,.mp3,audio/wav,audio/mpeg"}))

    def __init__(self, *args, refused: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.refused = refused  # why campaigns.uploads stopped the file, if it did

    def full_clean(self):
        super().full_clean()
        if self.refused:
            self.errors["file"] = self.error_class([self.refused])  # instead of "This field is required."

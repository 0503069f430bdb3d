from django import forms

from imports.mapping import FIELD_CHOICES


class UploadForm(forms.Form):
    file = forms.FileField(help_text="CSV or XLSX, at most 50 MB, one header row; one row per donor or per gift.")


class MappingForm(forms.Form):
    """One choice per column of the file (fields named col_<n>)."""

    def __init__(self, *args, headers: list[str], mapping: dict, **kwargs):
        super().__init__(*args, **kwargs)
        self.headers = headers
        for n, header in enumerate(headers):
            self.fields[f"col_{n}"] = forms.ChoiceField(label=header, choices=FIELD_CHOICES, required=False,
                                                        initial=mapping.get(header, ""))

    def mapping(self) -> dict:
        return {h: self.cleaned_data.get(f"col_{n}") or "" for n, h in enumerate(self.headers)}

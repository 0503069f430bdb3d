from django import forms

from imports.mapping import FIELD_CHOICES, custom_field_choices


class UploadForm(forms.Form):
    file = forms.FileField(help_text="CSV or XLSX, at most 50 MB, one header row; one row per donor or per gift.")


class MappingForm(forms.Form):
    """One choice per column of the file (fields named col_<n>)."""

    def __init__(self, *args, headers: list[str], mapping: dict, organisation=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.headers = headers
        choices = FIELD_CHOICES + (custom_field_choices(organisation) if organisation is not None else [])
        for n, header in enumerate(headers):
            self.fields[f"col_{n}"] = forms.ChoiceField(label=header, choices=choices, required=False,
                                                        initial=mapping.get(header, ""))

    def mapping(self) -> dict:
        return {h: self.cleaned_data.get(f"col_{n}") or "" for n, h in enumerate(self.headers)}

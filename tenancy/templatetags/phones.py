"""`{{ number|phone }}`: a number grouped as people read it (+91 98123 45601), its E.164 form kept as the value."""

import phonenumbers
from django import template
from django.utils.html import format_html

register = template.Library()


def grouped(number: str) -> str:
    """+919812345601 as +91 98123 45601; what is not a possible number stays as it was typed."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return number
    if not phonenumbers.is_possible_number(parsed):
        return number
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


@register.filter
def phone(number: str) -> str:
    # <data> keeps the number itself for copying, scripts and search; the text is for reading.
    return format_html('<data value="{}">{}</data>', number, grouped(number)) if number else ""

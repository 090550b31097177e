# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""How the cost reports write numbers and error texts: one money format and one error summary for every report.

* ``money``: US dollars with a thousands separator; cents for amounts of a dollar or more, four decimals below a
  dollar (an hourly node price of $0.0492 stays readable next to a monthly $35.92); ``signed=True`` for deltas.
* ``one_line``: any error text fit for one line of a report. An HTML page (a proxy's or a load balancer's error
  page instead of an API answer) becomes ``HTML error page "<its title>"``, never its markup, styles or scripts;
  other text has its tags dropped and whitespace collapsed; at most ``limit`` characters.
"""

import re

try:
    from http.client import responses as HTTP_REASONS
except ImportError:  # pragma: no cover - Python 2
    HTTP_REASONS = {}

MISSING = "-"
_HTML_RE = re.compile(r"<\s*(!doctype\s+html|html[\s>]|head[\s>]|body[\s>]|title[\s>])", re.I)
_DROP_RE = re.compile(r"<\s*(script|style|head)\b[^>]*>.*?<\s*/\s*\1\s*>", re.I | re.S)
_TITLE_RE = re.compile(r"<\s*title\b[^>]*>(.*?)<\s*/\s*title\s*>", re.I | re.S)
_H1_RE = re.compile(r"<\s*h1\b[^>]*>(.*?)<\s*/\s*h1\s*>", re.I | re.S)
_TAG_RE = re.compile(r"</?[A-Za-z!][^<>]*>")
_ENTITIES = (("&nbsp;", " "), ("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&#39;", "'"), ("&amp;", "&"))


def money(value, signed=False):
    """``$1,234.56`` / ``$0.0492`` / ``-$3.10``; ``+$3.10`` with ``signed``; ``-`` for None (no value)."""
    if value is None:
        return MISSING
    v = float(value)
    digits = 2 if v == 0 or abs(round(v, 2)) >= 1 else 4
    text = "$" + "{:,.{}f}".format(abs(v), digits)
    if round(v, digits) < 0:
        return "-" + text
    if signed and round(v, digits) > 0:
        return "+" + text
    return text


def pct(value, signed=False):
    """A ratio as a whole percentage (``0.25`` -> ``25%``), ``-`` for None."""
    if value is None:
        return MISSING
    return ("%+.0f%%" if signed else "%.0f%%") % (value * 100)


def http_status_text(status):
    """``HTTP 403 Forbidden`` (``HTTP 599`` for a code without a standard reason); '' for no status."""
    if not status:
        return ""
    try:
        status = int(status)
    except (TypeError, ValueError):
        return "HTTP %s" % status
    reason = HTTP_REASONS.get(status)
    return "HTTP %d %s" % (status, reason) if reason else "HTTP %d" % status


def _clean(fragment):
    text = _TAG_RE.sub(" ", fragment)
    for entity, char in _ENTITIES:
        text = text.replace(entity, char)
    return re.sub(r"\s+", " ", text).strip()


def _bound(text, limit):
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def is_html(text):
    return bool(_HTML_RE.search(str(text or "")))


def html_page_summary(text, limit=120):
    """``HTML error page "<title>"`` (else its first heading), bounded; ``HTML error page`` when it has neither."""
    text = str(text)
    m = _TITLE_RE.search(text) or _H1_RE.search(text)
    title = _clean(m.group(1)) if m else ""
    return 'HTML error page "%s"' % _bound(title, limit) if title else "HTML error page"


def one_line(text, limit=240):
    """Any error text as one bounded line: an HTML page becomes its summary (the text around it is kept)."""
    text = str(text if text is not None else "")
    m = _HTML_RE.search(text)
    if m:
        # an error message that embeds a whole page ("... operation: <!DOCTYPE html>...") keeps its prefix
        prefix = _clean(_DROP_RE.sub(" ", text[: m.start()])).rstrip(" :")
        summary = html_page_summary(text[m.start() :])
        text = "%s: %s" % (prefix, summary) if prefix else summary
    else:
        text = _clean(_DROP_RE.sub(" ", text))
    return _bound(text, limit)

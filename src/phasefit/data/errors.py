"""The one exception type for problems in user data."""

from __future__ import annotations

from phasefit.errors import PhasefitError


class DataError(PhasefitError, ValueError):
    """A problem with the user's data or data settings that the user can fix.

    Messages name the file (or data set), the row where there is one (1-based data record, header not counted),
    the column or setting involved, and say how to fix it, e.g.
    ``train.csv row 17: empty text in column 'text'. Remove the row or fill the text.``
    It subclasses ``ValueError`` so callers that already catch bad values keep working.
    """

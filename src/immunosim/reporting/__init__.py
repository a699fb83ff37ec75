"""Generated reports (edges): the validation report of a calibrated cohort (``validation``) and
the HTML report of a sweep result (``report``, ``immunosim report``). Nothing imports them back."""

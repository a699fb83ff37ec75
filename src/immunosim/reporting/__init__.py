"""Generated reports (edges): the validation report of a calibrated cohort."""

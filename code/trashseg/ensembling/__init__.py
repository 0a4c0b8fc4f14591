"""Ensembling stage: merge probability files into the CSV, fit ensemble weights out of fold,
pseudo-labels from the ensemble, and the submission writer/validator."""

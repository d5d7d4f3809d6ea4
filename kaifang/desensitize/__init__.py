"""脱敏: finding personal and sensitive values in tables and masking them before publication.

`detect` classifies columns and finds identifiers in free text (shapes in `patterns`, check
digits in `checks`, kinds in `kinds`); `mask` applies `rules` (one per column) to a table, with
`generalize` for dates, ages, addresses, coordinates and IP addresses.
"""

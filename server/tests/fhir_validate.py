"""Validates a FHIR R4 Bundle (JSON file named on the command line) against
the FHIR R4 (4.0.1) resource models of the `fhir.resources` package from PyPI:
required elements, data types, choice types, date/time formats, codes, and no
unknown elements, in every entry's resource. Exit 0 and "ok N" when valid."""

import json
import sys

import fhir.resources
from fhir.resources.bundle import Bundle

if fhir.resources.__fhir_version__ != "4.0.1":
    sys.exit(f"fhir.resources models FHIR {fhir.resources.__fhir_version__}, not R4 4.0.1")

with open(sys.argv[1], encoding="utf-8") as f:
    data = json.load(f)
bundle = Bundle.parse_obj(data)
kinds = {}
for e in bundle.entry or []:
    kinds[e.resource.resource_type] = kinds.get(e.resource.resource_type, 0) + 1
print("ok", len(bundle.entry or []), json.dumps(kinds, sort_keys=True))

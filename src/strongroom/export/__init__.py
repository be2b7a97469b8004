"""Court-ready handover: BagIt export, signatures, timestamps, reports, verification."""

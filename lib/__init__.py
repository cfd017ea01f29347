"""The bottom layer: small helpers that both apps may import (and that import neither)."""

"""Pictures for people: contact sheets, labels, mask overlays, flow colours."""

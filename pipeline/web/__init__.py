"""The web app: live view, events, face library, status, and the same operations as JSON under /api/."""

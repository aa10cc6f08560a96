"""Recognition in the stream: tracking, scheduling, gallery, matching, temporal aggregation, events."""

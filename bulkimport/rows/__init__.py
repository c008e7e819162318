"""Row preparation: columns, phone numbers, normalizing, in-file duplicates, phone workers."""

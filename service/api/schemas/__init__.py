"""Request and response models per resource, kept apart from the storage tables."""

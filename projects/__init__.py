"""Projects of the collection; ``projects.common`` holds what they share."""

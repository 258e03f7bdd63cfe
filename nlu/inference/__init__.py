"""What makes the Parser fast, kept out of `nlu.parser` so that it reads as the API."""

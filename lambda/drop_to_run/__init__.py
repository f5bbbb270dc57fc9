"""Drop-to-run: debounce inbox uploads per dataset and start one run once uploads are quiet."""

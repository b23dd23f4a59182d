"""The trustctl command line."""

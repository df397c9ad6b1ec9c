"""The Kubernetes REST API served to kubectl and the official clients: pure documents and conversions."""

"""The ticket webhook: Alertmanager notifications become ITSS tickets and SMS / IM notices."""

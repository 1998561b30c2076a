"""Settings: `kameng.settings.base` reads everything from the environment; `kameng.settings.test` is for pytest."""

"""The audit log (审计日志): an append-only record of every staff action on money, stock, users, prices, rules and
settings — who, what, the changed fields before and after (personal data masked), when and from where."""

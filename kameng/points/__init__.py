"""Points (积分): earned on completed spend, redeemed at checkout and in the points shop; own ledger unit."""

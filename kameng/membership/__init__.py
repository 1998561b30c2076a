"""Membership (成长型会员): levels by cumulative completed spend, member prices as a rule of the one price function."""

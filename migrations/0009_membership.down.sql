DROP TABLE member_spending;
DROP TABLE checkins;
DROP TABLE member_levels;
DROP TABLE points_ledger;
DROP FUNCTION points_ledger_to_balance();
DROP FUNCTION points_ledger_append_only();
DROP TABLE members;

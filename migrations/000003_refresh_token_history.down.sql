DROP TABLE IF EXISTS refresh_token_history;

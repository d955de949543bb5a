DROP TABLE feed_clients;

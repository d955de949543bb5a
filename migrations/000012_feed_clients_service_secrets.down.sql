DROP TABLE service_secrets;
DROP TABLE feed_clients;

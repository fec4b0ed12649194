-- wallet's tables. (Placeholder: replaced by the service's real schema.)
CREATE TABLE wallet_placeholder (id int PRIMARY KEY);

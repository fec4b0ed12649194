-- identity's tables. (Placeholder: replaced by the service's real schema.)
CREATE TABLE identity_placeholder (id int PRIMARY KEY);

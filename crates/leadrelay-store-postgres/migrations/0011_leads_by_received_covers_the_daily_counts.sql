-- The KPIs count a publisher's real leads per day, source and action over a range of received
-- times (`sales.rs::kpi_leads`). With those columns in `leads_by_received` the range is read
-- from the index alone: reading each lead's row (its sealed personal data makes it most of a
-- kilobyte) doubled the time of an all-time KPI read. The index keeps its leading columns, so
-- every query that used it still does; a lead insert writes the same number of index entries.
DROP INDEX leads_by_received;
CREATE INDEX leads_by_received ON leads(publisher_id, received_at, is_test, offer_id, source, action);

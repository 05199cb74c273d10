-- wrk script: posts the marketplace's documented HTTPS-endpoint example to the ingest route.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [[{"UserDetails":{"FirstName":"Some","LastName":"One","Email":"someone@contoso.com","Phone":"16175555555","Country":"USA","Company":"Contoso","Title":"Esquire"},"LeadSource":"AzureMarketplace","ActionCode":"INS","OfferTitle":"Test Microsoft","Description":"Test run through Power Automate"}]]

local counts = {}
response = function(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
end

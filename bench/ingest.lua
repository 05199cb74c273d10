-- wrk script: posts the marketplace's documented HTTPS-endpoint example to the ingest route,
-- with a different email in every request (a repeated email would make every lead after the
-- first a duplicate, which writes no outbox rows and measures the wrong path).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

local prefix, n = "", 0

function init(args)
  math.randomseed(os.time() + math.floor(os.clock() * 1e6))
  prefix = string.format("%08x", math.random(0, 0x7fffffff))
end

function request()
  n = n + 1
  local body = string.format([[{"UserDetails":{"FirstName":"Some","LastName":"One","Email":"lead%s-%d@contoso.com","Phone":"16175555555","Country":"USA","Company":"Contoso","Title":"Esquire"},"LeadSource":"AzureMarketplace","ActionCode":"INS","OfferTitle":"Test Microsoft","Description":"Test run through Power Automate"}]], prefix, n)
  return wrk.format(nil, nil, nil, body)
end

local counts = {}
response = function(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
end

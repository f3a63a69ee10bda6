// EC2 and IAM over the Query protocol: form bodies, response parsing, error bodies. Pure: the
// documents below follow the response shapes of the EC2 and IAM API references.
import AWS
import Foundation
import Testing

private func utf8(_ text: String) -> [UInt8] { Array(text.utf8) }

@Suite("Query protocol bodies and errors")
struct QueryProtocolTests {
    @Test("the body is Action, Version, then the parameters in order, RFC 3986-encoded")
    func formBody() {
        let body = AWSClient.queryBody(action: "DescribeSnapshots", version: "2016-11-15", parameters: [
            ("Owner.1", "self"), ("Filter.1.Name", "tag:vigil:command"), ("Filter.1.Value.1", "a b+c/d~é*"),
        ])
        #expect(body == "Action=DescribeSnapshots&Version=2016-11-15&Owner.1=self&Filter.1.Name=tag%3Avigil%3Acommand"
            + "&Filter.1.Value.1=a%20b%2Bc%2Fd~%C3%A9%2A")
    }

    @Test("an EC2 error document (Response/Errors/Error) gives its code, message and request id")
    func ec2Error() {
        let body = utf8("""
        <?xml version="1.0" encoding="UTF-8"?>
        <Response><Errors><Error><Code>InvalidInstanceID.NotFound</Code>\
        <Message>The instance ID 'i-1a2b3c4d' does not exist</Message></Error></Errors>\
        <RequestID>ea966190-f9aa-478e-9ede-example</RequestID></Response>
        """)
        let error = AWSClient.error(status: 400, body: body)
        #expect(error.code == "InvalidInstanceID.NotFound")
        #expect(error.status == 400)
        #expect(error.message == "The instance ID 'i-1a2b3c4d' does not exist")
        #expect(error.requestID == "ea966190-f9aa-478e-9ede-example")
        #expect(!error.isRetriable)
    }

    @Test("an IAM error document (ErrorResponse/Error) gives its code, message and request id")
    func iamError() {
        let body = utf8("""
        <ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">
          <Error><Type>Sender</Type><Code>NoSuchEntity</Code><Message>The user with name bob cannot be found.</Message></Error>
          <RequestId>7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</RequestId>
        </ErrorResponse>
        """)
        let error = AWSClient.error(status: 404, body: body)
        #expect(error.code == "NoSuchEntity")
        #expect(error.message == "The user with name bob cannot be found.")
        #expect(error.requestID == "7a62c49f-347e-4fc4-9331-6e8eEXAMPLE")
    }

    @Test("EC2 throttling is retriable")
    func throttling() {
        let body = utf8("<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message>"
            + "</Error></Errors><RequestID>r1</RequestID></Response>")
        #expect(AWSClient.error(status: 503, body: body).isRetriable)
    }

    @Test("an answer that is not XML, or is another action's, is invalid_response")
    func wrongDocument() {
        #expect(throws: AWSError(code: "invalid_response", message: "DescribeInstances answer is not XML")) {
            _ = try EC2Instance.parseDescribeInstances(utf8("{\"not\": \"xml\"}"))
        }
        do {
            _ = try EC2Instance.parseDescribeInstances(utf8("<DescribeSnapshotsResponse><snapshotSet/></DescribeSnapshotsResponse>"))
            Issue.record("a DescribeSnapshotsResponse was accepted as DescribeInstances")
        } catch {
            #expect(error.code == "invalid_response")
        }
    }
}

@Suite("EC2 response parsing")
struct EC2ParsingTests {
    static let describeInstances = """
    <DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
      <requestId>8f7724cf-496f-496e-8fe3-example</requestId>
      <reservationSet>
        <item>
          <reservationId>r-1234567890abcdef0</reservationId>
          <ownerId>123456789012</ownerId>
          <groupSet><item><groupId>sg-classic</groupId><groupName>classic</groupName></item></groupSet>
          <instancesSet>
            <item>
              <instanceId>i-1234567890abcdef0</instanceId>
              <imageId>ami-bff32ccc</imageId>
              <instanceState><code>16</code><name>running</name></instanceState>
              <privateDnsName>ip-192-168-1-88.eu-west-1.compute.internal</privateDnsName>
              <dnsName>ec2-54-194-252-215.eu-west-1.compute.amazonaws.com</dnsName>
              <instanceType>t2.micro</instanceType>
              <subnetId>subnet-56f5f633</subnetId>
              <vpcId>vpc-11112222</vpcId>
              <privateIpAddress>192.168.1.88</privateIpAddress>
              <ipAddress>54.194.252.215</ipAddress>
              <groupSet>
                <item><groupId>sg-e4076980</groupId><groupName>SecurityGroup1</groupName></item>
                <item><groupId>sg-0a1b2c3d</groupId><groupName>SecurityGroup2</groupName></item>
              </groupSet>
              <rootDeviceType>ebs</rootDeviceType>
              <rootDeviceName>/dev/xvda</rootDeviceName>
              <blockDeviceMapping>
                <item>
                  <deviceName>/dev/xvda</deviceName>
                  <ebs><volumeId>vol-1234567890abcdef0</volumeId><status>attached</status>
                    <attachTime>2015-12-22T10:44:09.000Z</attachTime><deleteOnTermination>true</deleteOnTermination></ebs>
                </item>
                <item>
                  <deviceName>/dev/sdf</deviceName>
                  <ebs><volumeId>vol-0fedcba9876543210</volumeId><status>attached</status></ebs>
                </item>
                <item><deviceName>/dev/sdb</deviceName><virtualName>ephemeral0</virtualName></item>
              </blockDeviceMapping>
              <networkInterfaceSet>
                <item>
                  <networkInterfaceId>eni-0f62d866</networkInterfaceId>
                  <subnetId>subnet-56f5f633</subnetId>
                  <vpcId>vpc-11112222</vpcId>
                  <privateIpAddress>192.168.1.88</privateIpAddress>
                  <groupSet>
                    <item><groupId>sg-e4076980</groupId><groupName>SecurityGroup1</groupName></item>
                    <item><groupId>sg-0a1b2c3d</groupId><groupName>SecurityGroup2</groupName></item>
                  </groupSet>
                  <attachment><attachmentId>eni-attach-6537fc0c</attachmentId><deviceIndex>0</deviceIndex></attachment>
                </item>
                <item>
                  <networkInterfaceId>eni-0a0b0c0d</networkInterfaceId>
                  <groupSet><item><groupId>sg-11112222</groupId><groupName>Replication</groupName></item></groupSet>
                </item>
              </networkInterfaceSet>
              <tagSet>
                <item><key>Name</key><value>web-1</value></item>
                <item><key>env</key><value>prod</value></item>
                <item><key>empty</key><value/></item>
              </tagSet>
            </item>
            <item>
              <instanceId>i-0598c7d356eba48d7</instanceId>
              <imageId>ami-bff32ccc</imageId>
              <instanceState><code>80</code><name>stopped</name></instanceState>
              <vpcId/>
              <groupSet/>
              <blockDeviceMapping/>
              <networkInterfaceSet/>
            </item>
          </instancesSet>
        </item>
        <item>
          <reservationId>r-0a0b0c0d0e0f01020</reservationId>
          <instancesSet>
            <item><instanceId>i-0abcdef1234567890</instanceId><instanceState><code>0</code><name>pending</name></instanceState></item>
          </instancesSet>
        </item>
      </reservationSet>
      <nextToken>eyJ2IjoiMiIsImMiOiJleGFtcGxlIn0=</nextToken>
    </DescribeInstancesResponse>
    """

    @Test("DescribeInstances: every reservation's instances, with groups, interfaces, volumes and tags")
    func describeInstances() throws {
        let page = try EC2Instance.parseDescribeInstances(utf8(Self.describeInstances))
        #expect(page.items.map(\.instanceID) == ["i-1234567890abcdef0", "i-0598c7d356eba48d7", "i-0abcdef1234567890"])
        #expect(page.nextToken == "eyJ2IjoiMiIsImMiOiJleGFtcGxlIn0=")
        let web = page.items[0]
        #expect(web == EC2Instance(
            instanceID: "i-1234567890abcdef0", state: "running", vpcID: "vpc-11112222", subnetID: "subnet-56f5f633",
            imageID: "ami-bff32ccc", privateIP: "192.168.1.88", publicIP: "54.194.252.215",
            securityGroupIDs: ["sg-e4076980", "sg-0a1b2c3d"],
            networkInterfaces: [
                EC2NetworkInterface(id: "eni-0f62d866", groupIDs: ["sg-e4076980", "sg-0a1b2c3d"]),
                EC2NetworkInterface(id: "eni-0a0b0c0d", groupIDs: ["sg-11112222"]),
            ],
            volumeIDs: ["vol-1234567890abcdef0", "vol-0fedcba9876543210"],
            tags: ["Name": "web-1", "env": "prod", "empty": ""]))
        // The reservation's (EC2-Classic) groupSet belongs to no instance.
        #expect(!page.items.contains { $0.securityGroupIDs.contains("sg-classic") })
        let stopped = page.items[1]
        #expect(stopped.state == "stopped")
        #expect(stopped.vpcID == nil)
        #expect(stopped.securityGroupIDs.isEmpty && stopped.volumeIDs.isEmpty && stopped.networkInterfaces.isEmpty)
        #expect(stopped.tags.isEmpty)
        #expect(page.items[2].state == "pending")
    }

    @Test("DescribeInstances: the last page has no token; an empty reservationSet is no instances")
    func lastPage() throws {
        let page = try EC2Instance.parseDescribeInstances(utf8("""
        <DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
          <requestId>x</requestId><reservationSet/>
        </DescribeInstancesResponse>
        """))
        #expect(page.items.isEmpty)
        #expect(page.nextToken == nil)
    }

    @Test("RunInstances: the instancesSet at the top of the answer")
    func runInstances() throws {
        let instances = try EC2Instance.parseRunInstances(utf8("""
        <RunInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
          <requestId>59dbff89-35bd-4eac-99ed-be587EXAMPLE</requestId>
          <reservationId>r-1234567890abcdef0</reservationId>
          <ownerId>123456789012</ownerId>
          <groupSet/>
          <instancesSet>
            <item>
              <instanceId>i-1234567890abcdef0</instanceId>
              <imageId>ami-bff32ccc</imageId>
              <instanceState><code>0</code><name>pending</name></instanceState>
              <subnetId>subnet-56f5f633</subnetId><vpcId>vpc-11112222</vpcId>
              <privateIpAddress>192.168.1.88</privateIpAddress>
              <groupSet><item><groupId>sg-e4076980</groupId><groupName>SecurityGroup1</groupName></item></groupSet>
              <tagSet><item><key>Name</key><value>test</value></item></tagSet>
            </item>
          </instancesSet>
        </RunInstancesResponse>
        """))
        #expect(instances == [EC2Instance(instanceID: "i-1234567890abcdef0", state: "pending", vpcID: "vpc-11112222",
                                          subnetID: "subnet-56f5f633", imageID: "ami-bff32ccc", privateIP: "192.168.1.88",
                                          securityGroupIDs: ["sg-e4076980"], tags: ["Name": "test"])])
    }

    @Test("DescribeSecurityGroups: ids, names, VPC, tags and how many rules each way")
    func describeSecurityGroups() throws {
        let page = try EC2SecurityGroup.parseDescribeSecurityGroups(utf8("""
        <DescribeSecurityGroupsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
          <requestId>59dbff89-35bd-4eac-99ed-be587EXAMPLE</requestId>
          <securityGroupInfo>
            <item>
              <ownerId>123456789012</ownerId>
              <groupId>sg-1a2b3c4d</groupId>
              <groupName>WebServers</groupName>
              <groupDescription>Web Servers</groupDescription>
              <vpcId>vpc-614cc409</vpcId>
              <ipPermissions>
                <item><ipProtocol>tcp</ipProtocol><fromPort>80</fromPort><toPort>80</toPort><groups/>
                  <ipRanges><item><cidrIp>0.0.0.0/0</cidrIp></item></ipRanges></item>
              </ipPermissions>
              <ipPermissionsEgress>
                <item><ipProtocol>-1</ipProtocol><groups/><ipRanges><item><cidrIp>0.0.0.0/0</cidrIp></item></ipRanges></item>
              </ipPermissionsEgress>
            </item>
            <item>
              <ownerId>123456789012</ownerId>
              <groupId>sg-9a8d7f5c</groupId>
              <groupName>vigil-isolation</groupName>
              <groupDescription>Allows nothing</groupDescription>
              <vpcId>vpc-614cc409</vpcId>
              <ipPermissions/>
              <ipPermissionsEgress/>
              <tagSet><item><key>vigil:command</key><value>cmd-7</value></item></tagSet>
            </item>
          </securityGroupInfo>
        </DescribeSecurityGroupsResponse>
        """))
        #expect(page.nextToken == nil)
        #expect(page.items == [
            EC2SecurityGroup(groupID: "sg-1a2b3c4d", name: "WebServers", vpcID: "vpc-614cc409", description: "Web Servers",
                             ingressPermissionCount: 1, egressPermissionCount: 1),
            EC2SecurityGroup(groupID: "sg-9a8d7f5c", name: "vigil-isolation", vpcID: "vpc-614cc409", description: "Allows nothing",
                             tags: ["vigil:command": "cmd-7"]),
        ])
    }

    @Test("DescribeSnapshots: ids, volumes, states, start times and tags")
    func describeSnapshots() throws {
        let page = try EC2Snapshot.parseDescribeSnapshots(utf8("""
        <DescribeSnapshotsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
          <requestId>59dbff89-35bd-4eac-99ed-be587EXAMPLE</requestId>
          <snapshotSet>
            <item>
              <snapshotId>snap-1234567890abcdef0</snapshotId>
              <volumeId>vol-1234567890abcdef0</volumeId>
              <status>pending</status>
              <startTime>2016-01-01T12:34:56.000Z</startTime>
              <progress>30%</progress>
              <ownerId>123456789012</ownerId>
              <volumeSize>15</volumeSize>
              <description>Daily Backup</description>
              <encrypted>false</encrypted>
              <tagSet>
                <item><key>vigil:command</key><value>cmd-7</value></item>
                <item><key>vigil:instance</key><value>i-1234567890abcdef0</value></item>
              </tagSet>
            </item>
          </snapshotSet>
          <nextToken>next-page</nextToken>
        </DescribeSnapshotsResponse>
        """))
        #expect(page.nextToken == "next-page")
        #expect(page.items == [EC2Snapshot(
            snapshotID: "snap-1234567890abcdef0", volumeID: "vol-1234567890abcdef0", state: "pending",
            description: "Daily Backup", startTime: Date(timeIntervalSince1970: 1_451_651_696),
            tags: ["vigil:command": "cmd-7", "vigil:instance": "i-1234567890abcdef0"])])
    }
}

@Suite("IAM response parsing")
struct IAMParsingTests {
    @Test("ListAccessKeys: keys with status and creation date; Marker only while truncated")
    func listAccessKeys() throws {
        let truncated = try IAMAccessKey.parseListAccessKeys(utf8("""
        <ListAccessKeysResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">
          <ListAccessKeysResult>
            <UserName>Bob</UserName>
            <AccessKeyMetadata>
              <member><UserName>Bob</UserName><AccessKeyId>AKIA1234567890EXAMPLE</AccessKeyId>
                <Status>Active</Status><CreateDate>2015-03-09T18:39:23Z</CreateDate></member>
              <member><UserName>Bob</UserName><AccessKeyId>AKIA0987654321EXAMPLE</AccessKeyId>
                <Status>Inactive</Status><CreateDate>2015-03-10T08:00:00.123Z</CreateDate></member>
            </AccessKeyMetadata>
            <IsTruncated>true</IsTruncated>
            <Marker>page-2</Marker>
          </ListAccessKeysResult>
          <ResponseMetadata><RequestId>7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</RequestId></ResponseMetadata>
        </ListAccessKeysResponse>
        """))
        #expect(truncated.nextToken == "page-2")
        #expect(truncated.items.map(\.accessKeyID) == ["AKIA1234567890EXAMPLE", "AKIA0987654321EXAMPLE"])
        #expect(truncated.items[0] == IAMAccessKey(accessKeyID: "AKIA1234567890EXAMPLE", userName: "Bob", status: "Active",
                                                   createDate: Date(timeIntervalSince1970: 1_425_926_363)))
        #expect(truncated.items[0].isActive)
        #expect(!truncated.items[1].isActive)
        #expect(truncated.items[1].status == IAMAccessKeyStatus.inactive.rawValue)
        let fraction = try #require(truncated.items[1].createDate).timeIntervalSince1970
        #expect(abs(fraction - 1_425_974_400.123) < 0.001)

        let last = try IAMAccessKey.parseListAccessKeys(utf8("""
        <ListAccessKeysResponse><ListAccessKeysResult><AccessKeyMetadata/><IsTruncated>false</IsTruncated>\
        <Marker>stale</Marker></ListAccessKeysResult></ListAccessKeysResponse>
        """))
        #expect(last.items.isEmpty)
        #expect(last.nextToken == nil)
    }

    @Test("microsecond timestamps (as moto writes them) parse")
    func microseconds() throws {
        let page = try IAMAccessKey.parseListAccessKeys(utf8("""
        <ListAccessKeysResponse><ListAccessKeysResult><AccessKeyMetadata><member><UserName>a</UserName>\
        <AccessKeyId>AKIAEXAMPLE</AccessKeyId><Status>Active</Status><CreateDate>2026-11-27T03:57:02.238286Z</CreateDate>\
        </member></AccessKeyMetadata></ListAccessKeysResult></ListAccessKeysResponse>
        """))
        let date = try #require(page.items.first?.createDate)
        #expect(abs(date.timeIntervalSince1970 - 1_795_751_822.238) < 0.01)
    }

    @Test("GetAccessKeyLastUsed: the owner's user name")
    func accessKeyOwner() throws {
        let owner = try IAMAccessKey.parseAccessKeyOwner(utf8("""
        <GetAccessKeyLastUsedResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">
          <GetAccessKeyLastUsedResult>
            <AccessKeyLastUsed>
              <Region>us-east-1</Region>
              <LastUsedDate>2015-03-13T10:45:00Z</LastUsedDate>
              <ServiceName>iam</ServiceName>
            </AccessKeyLastUsed>
            <UserName>bob</UserName>
          </GetAccessKeyLastUsedResult>
          <ResponseMetadata><RequestId>510a8a9d-ea9f-11e4-9b5e-example</RequestId></ResponseMetadata>
        </GetAccessKeyLastUsedResponse>
        """))
        #expect(owner == "bob")
        #expect(throws: AWSError.self) {
            _ = try IAMAccessKey.parseAccessKeyOwner(utf8(
                "<GetAccessKeyLastUsedResponse><GetAccessKeyLastUsedResult/></GetAccessKeyLastUsedResponse>"))
        }
    }

    @Test("ListUsers: users with ARN, path and creation date; Marker only while truncated")
    func listUsers() throws {
        let truncated = try IAMUser.parseListUsers(utf8("""
        <ListUsersResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">
          <ListUsersResult>
            <Users>
              <member><UserId>AID2MAB8DPLSRHEXAMPLE</UserId><Path>/division_abc/subdivision_xyz/engineering/</Path>
                <UserName>Andrew</UserName><Arn>arn:aws:iam::123456789012:user/division_abc/subdivision_xyz/engineering/Andrew</Arn>
                <CreateDate>2012-09-05T19:38:48Z</CreateDate></member>
              <member><UserId>AIDIODR4TAW7CSEXAMPLE</UserId><Path>/</Path><UserName>Jackie</UserName>
                <Arn>arn:aws:iam::123456789012:user/Jackie</Arn><CreateDate>2014-04-09T15:43:45Z</CreateDate></member>
            </Users>
            <IsTruncated>true</IsTruncated>
            <Marker>page-2</Marker>
          </ListUsersResult>
          <ResponseMetadata><RequestId>7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</RequestId></ResponseMetadata>
        </ListUsersResponse>
        """))
        #expect(truncated.nextToken == "page-2")
        #expect(truncated.items.map(\.userName) == ["Andrew", "Jackie"])
        #expect(truncated.items[1] == IAMUser(userName: "Jackie", userID: "AIDIODR4TAW7CSEXAMPLE",
                                              arn: "arn:aws:iam::123456789012:user/Jackie", path: "/",
                                              createDate: Date(timeIntervalSince1970: 1_397_058_225)))
        #expect(truncated.items[0].path == "/division_abc/subdivision_xyz/engineering/")
        #expect(truncated.items.allSatisfy { $0.accountID == "123456789012" })

        let last = try IAMUser.parseListUsers(utf8("""
        <ListUsersResponse><ListUsersResult><Users/><IsTruncated>false</IsTruncated>\
        <Marker>stale</Marker></ListUsersResult></ListUsersResponse>
        """))
        #expect(last.items.isEmpty)
        #expect(last.nextToken == nil)
        #expect(throws: AWSError.self) { _ = try IAMUser.parseListUsers(utf8("<ListAccessKeysResponse/>")) }
    }

    @Test("a user without Arn is skipped; an ARN without an account gives no account")
    func listUsersPartial() throws {
        let page = try IAMUser.parseListUsers(utf8("""
        <ListUsersResponse><ListUsersResult><Users><member><UserName>no-arn</UserName></member>\
        <member><UserName>x</UserName><Arn>not-an-arn</Arn></member></Users></ListUsersResult></ListUsersResponse>
        """))
        #expect(page.items.map(\.userName) == ["x"])
        #expect(page.items[0].accountID == nil)
    }

    @Test("GetCallerIdentity: the account, ARN and user id")
    func callerIdentity() throws {
        let identity = try STSCallerIdentity.parseGetCallerIdentity(utf8("""
        <GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
          <GetCallerIdentityResult>
            <Arn>arn:aws:iam::123456789012:user/Alice</Arn>
            <UserId>AIDACKCEVSQ6C2EXAMPLE</UserId>
            <Account>123456789012</Account>
          </GetCallerIdentityResult>
          <ResponseMetadata><RequestId>01234567-89ab-cdef-0123-456789abcdef</RequestId></ResponseMetadata>
        </GetCallerIdentityResponse>
        """))
        #expect(identity == STSCallerIdentity(account: "123456789012", arn: "arn:aws:iam::123456789012:user/Alice",
                                              userID: "AIDACKCEVSQ6C2EXAMPLE"))
        #expect(throws: AWSError.self) {
            _ = try STSCallerIdentity.parseGetCallerIdentity(utf8("<GetCallerIdentityResponse><GetCallerIdentityResult/></GetCallerIdentityResponse>"))
        }
    }

    @Test("the statuses a key can be set to are spelled as IAM spells them")
    func statuses() {
        #expect(IAMAccessKeyStatus.allCases.map(\.rawValue) == ["Active", "Inactive"])
    }
}
